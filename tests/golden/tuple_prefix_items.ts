/** Tuples from prefixItems (2020-12). */
declare function external_tuple_prefix_items(input: {
  point: [number, number];
  range?: [number, number?];
  row?: [string, ...number[]];
}): Promise<unknown>;
