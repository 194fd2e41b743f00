type Query = {
  all?: (Filter | Query)[];
  any?: (Filter | Query)[];
};

type Filter = {
  field: string;
  op: "=" | "!=" | "~" | "in";
  value: string | number | string[];
};

/** Search issues with a query, across trackers. */
declare function external_search_issues(input: {
  query: Query;
  /** @default 20 */
  limit?: number;
}): Promise<unknown>;
