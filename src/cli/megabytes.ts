/** Megabytes as file transfers count them (10^6 bytes), in the summary line and the progress bar alike. */
export const MB = 1e6;

export function megabytes(bytes: number): string {
  return (bytes / MB).toFixed(1);
}
