/** Arrays of unions are parenthesised. */
declare function external_union_array_items(input: {
  ids: (string | number)[];
  matrix?: (number | null)[][];
}): Promise<unknown>;
