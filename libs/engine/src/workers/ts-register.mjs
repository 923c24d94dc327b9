// Preloaded (--import) into worker threads started from the TypeScript sources.
import { register } from 'node:module';

register(new URL('./ts-hooks.mjs', import.meta.url));
