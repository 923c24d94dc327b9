/**
 * `metaprune fidelity`: the resumable fidelity study (issue 16). Every finished unit is a
 * file under `out` (see units.ts); the same command skips them, so the study continues
 * across interruptions and sessions. Stages, in order: the PruningNet (snapshots), one
 * search, the candidates, the proxy scores (snapshot x proxy size) — these need the
 * PruningNet, whose checkpoints stay in `work` — then the retraining units, which only
 * need the candidates' encodings. The analysis (summary.json, README.md, plot) is
 * rewritten after every unit.
 */
import { mkdirSync } from 'node:fs';
import { buildNetwork, type Network } from '@metaprune/core';
import { UsageError } from '../../errors.js';
import { prepareLocalData } from '../../local-data.js';
import { bar, type Reporter } from '../reporter.js';
import { runRetrains } from '../retrain.js';
import { throwIfAborted } from '../session.js';
import { writeStudyAnalysis } from './analysis.js';
import { type CandidatesUnit, chooseCandidates } from './candidates.js';
import type { StudyConfig } from './config.js';
import { formatPlan, proxyUnit, studyPlan } from './plan.js';
import { snapshotDir, snapshotsReady, trainedSteps, trainStudyPruningNet } from './pruningnet.js';
import { writeStudyReport } from './report.js';
import { plannedRetrains, retrainJob, retrainUnit } from './retrain-units.js';
import { openScorers } from './scorer.js';
import { type SearchUnit, studySearch } from './search.js';
import { UnitStore } from './units.js';

export interface StudyOptions {
  cfg: StudyConfig;
  /** Unit files, summary and report (committed). */
  out: string;
  /** PruningNet checkpoints and non-headline models (not committed). */
  work: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /** summary.json (issue 16 item 6); its model paths are relative to its folder. */
  summaryPath: string;
  /** The command line, for the report. */
  command: string;
  /** Stop after printing the plan (and rewriting the report from the finished units). */
  planOnly?: boolean;
  /**
   * Train the PruningNet again when the candidates exist but a stage that needs it is
   * unfinished and its snapshots are not here (a fresh clone); default: skip those stages.
   */
  retrainPruningNet?: boolean;
  /** Stop before the retraining stage. */
  skipRetrain?: boolean;
}

export interface StudyConfigUnit {
  format: 'metaprune-fidelity/1';
  config: StudyConfig;
}

export async function runStudy(o: StudyOptions): Promise<void> {
  const { cfg, reporter: ui } = o;
  const units = new UnitStore(o.out);
  mkdirSync(o.work, { recursive: true });
  const saved = units.get<StudyConfigUnit>('study');
  const { speeds: _s, jobs: _j, ...fixed } = cfg;
  if (saved) {
    const { speeds: _s2, jobs: _j2, ...prev } = saved.config;
    if (JSON.stringify(prev) !== JSON.stringify(fixed)) {
      throw new UsageError(
        `--out: ${o.out} holds a study with another configuration (study.json); use another --out or the same settings`,
      );
    }
  } else {
    units.put('study', { format: 'metaprune-fidelity/1', config: cfg } satisfies StudyConfigUnit);
  }
  let cands = units.get<CandidatesUnit>('candidates');
  const refresh = () =>
    writeStudyReport({
      cfg,
      a: writeStudyAnalysis(cfg, units),
      units,
      summaryPath: o.summaryPath,
      command: o.command,
    });
  ui.line(
    `plan (units finished under ${o.out}):\n${formatPlan(studyPlan(cfg, units, cands, trainedSteps(o.work)))}`,
  );
  if (o.planOnly) {
    refresh();
    return;
  }

  const net: Network = buildNetwork(cfg.network);
  const data = await prepareLocalData({}, net);
  const last = cfg.pruningnet.snapshots[cfg.pruningnet.snapshots.length - 1]!;
  const proxyTodo = () =>
    cfg.pruningnet.snapshots.flatMap((c) =>
      cfg.proxies.filter((p) => !units.has(proxyUnit(c, p.name))).map((p) => ({ c, p })),
    );
  let needPn =
    !units.has('search') || !cands || proxyTodo().length > 0 || !units.has('search-race');
  if (needPn && cands && !snapshotsReady(cfg, o.work) && !o.retrainPruningNet) {
    ui.line(
      `skipping ${proxyTodo().length} proxy unit(s)${units.has('search-race') ? '' : ' and the racing search'}: they need the PruningNet, whose snapshots are not in ${o.work} (--pruningnet trains it again, ~${((cfg.pruningnet.chunks * cfg.pruningnet.stepsPerChunk * cfg.pruningnet.batchSize) / cfg.speeds.trainImgPerSec / 3600).toFixed(1)} h)`,
    );
    needPn = false;
  }
  if (needPn) {
    if (!snapshotsReady(cfg, o.work)) {
      ui.line('[1/4] PruningNet');
      await trainStudyPruningNet({
        cfg,
        net,
        data,
        work: o.work,
        units,
        reporter: ui,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    }
    throwIfAborted(o.signal);
    const sizeOf = (name: string) => {
      const size = cfg.proxies.find((p) => p.name === name);
      if (!size) throw new UsageError(`proxy ${name} is not one of the proxy sizes`);
      return size;
    };
    const scorersFor = (snapshot: number, names: readonly string[]) =>
      openScorers({
        checkpoint: snapshotDir(o.work, snapshot),
        data,
        sizes: names.map(sizeOf),
        batchSize: cfg.proxyBatch,
        seed: cfg.pruningnet.seed,
        workers: cfg.jobs,
      });
    let search = units.get<SearchUnit>('search');
    if (!search) {
      ui.line(`[2/4] search with snapshot c${last}, proxy ${cfg.search.proxy}`);
      const scorers = await scorersFor(last, [cfg.search.proxy]);
      try {
        search = await studySearch({
          net,
          scorers: scorers.views,
          snapshot: last,
          fractions: cfg.budgetFractions,
          ...cfg.search,
          reporter: ui,
        });
      } finally {
        await scorers.close();
      }
      units.put('search', search);
      ui.line(`  search: ${search.evaluated} scored in ${search.seconds.toFixed(0)} s`);
    }
    if (!cands) {
      cands = chooseCandidates({
        net,
        search,
        headlineFractions: cfg.headlineFractions,
        count: cfg.candidates,
        stabilityCount: cfg.retrain.stabilityCount,
        seed: cfg.search.seed,
      });
      units.put('candidates', cands);
      ui.line(
        `  ${cands.candidates.length} candidates; stability subset ${cands.stability.join(', ')}`,
      );
    }
    // longest PruningNet first: its scores matter most (the search used it); one pool per
    // snapshot serves every size
    const todo = proxyTodo().sort((a, b) => b.c - a.c);
    const list = cands.candidates;
    for (const snap of [...new Set(todo.map((t) => t.c))]) {
      throwIfAborted(o.signal);
      const sizes = todo.filter((t) => t.c === snap).map((t) => t.p.name);
      const scorers = await scorersFor(snap, sizes);
      try {
        for (const scorer of scorers.views) {
          throwIfAborted(o.signal);
          const p = scorer.size;
          ui.line(`[3/4] proxy scores: snapshot c${snap}, proxy ${p.name}`);
          const t0 = Date.now();
          const tops = await scorer.score(
            list.map((x) => x.encoding),
            (done) => ui.status(`proxy ${bar(done / list.length)} ${done}/${list.length}`),
          );
          units.put(proxyUnit(snap, p.name), {
            snapshot: snap,
            proxy: p,
            seconds: (Date.now() - t0) / 1000,
            evalSeconds: scorer.evalSeconds,
            scores: Object.fromEntries(list.map((x, i) => [x.id, tops[i]])),
          });
          ui.clear();
          refresh();
        }
      } finally {
        await scorers.close();
        ui.clear();
      }
    }
    if (!units.has('search-race')) {
      throwIfAborted(o.signal);
      ui.line(`[3/4] the same search, racing ${cfg.race.proxies.join(' > ')} (k ${cfg.race.k})`);
      const scorers = await scorersFor(last, cfg.race.proxies);
      try {
        const raced = await studySearch({
          net,
          scorers: scorers.views,
          race: { k: cfg.race.k, z: cfg.race.z },
          snapshot: last,
          fractions: cfg.budgetFractions,
          ...cfg.search,
          reporter: ui,
        });
        units.put('search-race', raced);
        ui.line(
          `  racing search: ${raced.evaluated} candidates in ${raced.seconds.toFixed(0)} s (scored per rung ${raced.scoredPerRung.join(' / ')})`,
        );
      } finally {
        await scorers.close();
      }
    }
  }
  refresh();
  if (o.skipRetrain || !cands) return;
  // A failed network (e.g. killed for memory) must not end a run of hours: the others go
  // on, and a failed one gets one more try; a rerun of the command tries it again.
  const attempts = new Map<string, number>();
  for (;;) {
    const jobs = plannedRetrains(cfg, cands).filter(
      (r) => !units.has(r.name) && (attempts.get(r.name) ?? 0) < 2,
    );
    if (jobs.length === 0) break;
    ui.line(`[4/4] retraining: ${jobs.length} units to go, ${cfg.jobs} at a time`);
    const byId = new Map(jobs.map((j) => [j.name, j]));
    const specs = jobs.map((j) => retrainJob(cfg, net.spec, j, o.out, o.work));
    try {
      await runRetrains(specs, {
        concurrency: cfg.jobs,
        reporter: ui,
        ...(o.signal ? { signal: o.signal } : {}),
        onDone: (job, r) => {
          const p = byId.get(job.id)!;
          units.put(p.name, retrainUnit(p, r));
          ui.line(
            `  ${job.label}: test top-1 ${(100 * r.test_top1).toFixed(2)}% (${r.seconds.toFixed(0)} s)`,
          );
          refresh();
        },
      });
      break;
    } catch (err) {
      throwIfAborted(o.signal);
      const message = (err as Error).message;
      const failed = specs.find((j) => message.startsWith(`retraining ${j.label} failed`));
      ui.line(`  ${message.split('\n')[0]}${failed ? '; going on with the others' : ''}`);
      if (!failed) throw err;
      attempts.set(failed.id, (attempts.get(failed.id) ?? 0) + 1);
    }
  }
  const gaveUp = [...attempts.keys()].filter((n) => !units.has(n));
  if (gaveUp.length > 0) {
    throw new Error(
      `${gaveUp.length} retraining unit(s) failed twice (${gaveUp.join(', ')}); every other unit is saved, rerun to try them again`,
    );
  }
}
