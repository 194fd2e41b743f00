/** Type arrays keep every member. */
declare function external_nullable_type_arrays(input: {
  /** May be null. */
  name: string | null;
  value: string | number | null;
  flag?: boolean;
}): Promise<unknown>;
