import { readFileSync } from 'node:fs';

/** Roster's version, from the package.json that ships with the sources (no build step stamps it). */
export const ROSTER_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
