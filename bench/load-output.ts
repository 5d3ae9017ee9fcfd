/**
 * What the load generator prints on stdout, shared with the harness that reads it: the window
 * marks, then one JSON line with the LoadResult.
 */

/** Printed around the measured window so the harness can sample the server's CPU time. */
export const WINDOW_START = 'WINDOW start';
export const WINDOW_END = 'WINDOW end';

export interface LoadResult {
  /** Echoed messages counted during the measured window. */
  messages: number;
  seconds: number;
  messagesPerSecond: number;
  /** Echoed payload megabytes (10^6 bytes) per second. */
  megabytesPerSecond: number;
  /**
   * CPU time the load generator used in the window, as a fraction of one core: well below 1
   * means it was waiting on the server, i.e. it was not the bottleneck.
   */
  loadCpu: number;
}
