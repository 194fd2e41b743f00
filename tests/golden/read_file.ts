/** Read the complete contents of a file from the file system. */
declare function external_read_file(input: {
  /** Absolute path of the file. */
  path: string;
  /** Return only the first N lines. */
  head?: number;
  /** Return only the last N lines. */
  tail?: number;
}): Promise<{
  content: string;
}>;
