/**
 * Finding the images of an image folder (torchvision's `ImageFolder` layout): one
 * subfolder per class, optionally under `train/`, `val/`, `test/` split folders. Only
 * directory listings here; decoding is the decode pool's job.
 */
import { type Dirent, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DatasetError } from '../errors.js';

/** File name endings decoded (case-insensitive): JPEG, PNG, WebP. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

/** One image file and its class id (index into the folder's sorted class names). */
export interface ImageEntry {
  path: string;
  label: number;
}

export interface ImageFolderScan {
  root: string;
  /** Class folder names, sorted (code-point order, as torchvision sorts them). */
  classNames: string[];
  train: ImageEntry[];
  /** `test/`, else `val/`, else every tenth file of each class (see {@link scanImageFolder}). */
  test: ImageEntry[];
  /** Where the test images came from. */
  testFrom: 'test' | 'val' | 'held-out';
  /** Files in class folders that are not images by their name (reported, never decoded). */
  unsupported: string[];
}

const SPLITS = ['train', 'val', 'test'] as const;

function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new DatasetError(dir, 'a readable image folder (one subfolder per class)', {
      kind: 'missing',
      actual: code,
      cause: err,
    });
  }
}

const visible = (name: string) => !name.startsWith('.');
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Class folders of `dir` (sorted) with their files (sorted). */
function scanClasses(dir: string): { classes: string[]; files: string[][]; unsupported: string[] } {
  const entries = listDir(dir).filter((e) => visible(e.name));
  const classes = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort(byName);
  if (classes.length === 0) {
    throw new DatasetError(dir, 'one subfolder per class (with JPEG, PNG or WebP images)', {
      kind: 'invalid',
      actual: entries.length === 0 ? 'an empty folder' : 'no subfolders',
    });
  }
  const files: string[][] = [];
  const unsupported: string[] = [];
  for (const cls of classes) {
    const found = listDir(join(dir, cls))
      .filter((e) => visible(e.name) && !e.isDirectory())
      .map((e) => e.name)
      .sort(byName);
    const images: string[] = [];
    for (const name of found) {
      if (IMAGE_EXTENSIONS.includes(extname(name).toLowerCase())) images.push(join(dir, cls, name));
      else unsupported.push(join(dir, cls, name));
    }
    if (images.length === 0) {
      throw new DatasetError(
        join(dir, cls),
        'at least one JPEG, PNG or WebP image in every class folder',
        {
          kind: 'invalid',
          actual:
            found.length === 0 ? 'an empty class folder' : `${found.length} files, none an image`,
        },
      );
    }
    files.push(images);
  }
  return { classes, files, unsupported };
}

function entries(files: string[][], keep: (i: number) => boolean = () => true): ImageEntry[] {
  const out: ImageEntry[] = [];
  files.forEach((list, label) => {
    list.forEach((path, i) => {
      if (keep(i)) out.push({ path, label });
    });
  });
  return out;
}

/**
 * Lists an image folder. With a `train/` subfolder the splits are its `train/` and `test/`
 * (else `val/`) folders, whose class folders must carry the same names; without one, `dir`
 * holds the class folders and every tenth file of each class (by sorted name, the 10th,
 * 20th, ...) is held out as the test split — deterministic and stratified, and never
 * touched by training or search (the train / val split for search is carved from the
 * rest). Fewer than two classes, an empty class folder or an empty folder are errors.
 */
export async function scanImageFolder(dir: string): Promise<ImageFolderScan> {
  return scanImageFolderSync(dir);
}

/**
 * {@link scanImageFolder} without a promise, for request validation that must answer at
 * once. Directory listings only (no file is opened): about a second per million files.
 */
export function scanImageFolderSync(dir: string): ImageFolderScan {
  const top = listDir(dir)
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  const splits = SPLITS.filter((s) => top.includes(s));
  let scan: ImageFolderScan;
  if (splits.includes('train')) {
    const train = scanClasses(join(dir, 'train'));
    const testFrom = splits.includes('test') ? 'test' : splits.includes('val') ? 'val' : undefined;
    if (testFrom === undefined) {
      throw new DatasetError(dir, 'a test/ or val/ folder beside train/', {
        kind: 'invalid',
        actual: 'train/ only',
      });
    }
    const test = scanClasses(join(dir, testFrom));
    if (test.classes.join('\n') !== train.classes.join('\n')) {
      const extra = test.classes.find((c) => !train.classes.includes(c));
      const lacking = train.classes.find((c) => !test.classes.includes(c));
      throw new DatasetError(join(dir, testFrom), `the class folders of ${join(dir, 'train')}`, {
        kind: 'invalid',
        actual: extra !== undefined ? `an extra class ${extra}` : `no class ${lacking}`,
      });
    }
    scan = {
      root: dir,
      classNames: train.classes,
      train: entries(train.files),
      test: entries(test.files),
      testFrom,
      unsupported: [...train.unsupported, ...test.unsupported],
    };
  } else {
    const all = scanClasses(dir);
    scan = {
      root: dir,
      classNames: all.classes,
      train: entries(all.files, (i) => i % 10 !== 9),
      test: entries(all.files, (i) => i % 10 === 9),
      testFrom: 'held-out',
      unsupported: all.unsupported,
    };
  }
  if (scan.classNames.length < 2) {
    throw new DatasetError(dir, 'at least two class folders', {
      kind: 'invalid',
      actual: `one (${scan.classNames[0]})`,
    });
  }
  if (scan.classNames.length > 255) {
    // Labels are stored as bytes (Uint8Array) throughout the data library.
    throw new DatasetError(dir, 'at most 255 class folders', {
      kind: 'invalid',
      actual: `${scan.classNames.length}`,
    });
  }
  return scan;
}
