/** Declared keys plus typed extra keys. */
declare function external_additional_properties_schema(input: {
  name: string;
  count?: number;
  /**
   * Feature flags.
   * Other keys: boolean.
   */
  [key: string]: boolean | string | number | undefined;
}): Promise<unknown>;
