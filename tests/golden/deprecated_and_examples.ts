/** Deprecated fields and examples. */
declare function external_deprecated_and_examples(input: {
  /**
   * @example "cats"
   * @example "dogs"
   */
  q: string;
  /**
   * Use cursor instead.
   * @deprecated
   */
  page?: number;
  /** @example "abc==" */
  cursor?: string;
}): Promise<unknown>;
