/** Run a read-only SQL query. */
declare function external_sql_query(input: {
  sql: string;
  params?: (string | number | boolean | null)[];
  /** @default "main" */
  database?: string;
  /** @minimum 1 */
  timeout_ms?: number;
}): Promise<{
  columns: string[];
  rows: unknown[][];
  truncated: boolean;
}>;
