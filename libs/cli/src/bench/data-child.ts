/**
 * The child process of the `data-stream` bench: streams an image folder once with a
 * bounded cache and prints `{images, rate, peakRssMb, cachedBytes}`. A process of its own,
 * so its peak RSS is the streaming's alone.
 */
import { streamFolder } from './data.js';

const [dir, size, cacheBytes, prefetch] = process.argv.slice(2);
const r = await streamFolder(dir!, {
  size: Number(size),
  epochs: 1,
  cacheBytes: Number(cacheBytes),
  prefetch: Number(prefetch),
});
console.log(
  JSON.stringify({
    images: r.images,
    rate: r.rates[0],
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    cachedBytes: r.cachedBytes,
  }),
);
