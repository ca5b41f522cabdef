import { ConfigError, parseConfig } from '../../lib/config/load';

/** The problems the loader reports for a config text that must be rejected. */
export function problemsOf(text: string): readonly string[] {
  try {
    parseConfig(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}
