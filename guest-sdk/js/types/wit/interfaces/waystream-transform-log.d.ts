// Generated from wit/waystream.wit by scripts/wit-types.mjs (jco); do not edit.
declare module 'waystream:transform/log@0.3.1' {
  /**
   * Writes one line into the host's log, tagged with the module's name and version.
   * The host caps line length and lines per batch.
   */
  export function log(level: Level, message: string): void;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
