/** Constraints the type cannot express go into JSDoc. */
declare function external_constraints_in_jsdoc(input: {
  /**
   * Page size.
   * @minimum 1
   * @maximum 100
   * @default 10
   */
  limit?: number;
  /**
   * @exclusiveMinimum 0
   * @exclusiveMaximum 1
   * @multipleOf 0.01
   */
  ratio?: number;
  /**
   * @minLength 3
   * @maxLength 8
   * @pattern ^[A-Z]+$
   */
  code: string;
  /**
   * @minItems 1
   * @maxItems 5
   * @uniqueItems
   * @items.maxLength 20
   */
  tags?: string[];
  /** @exclusiveMinimum 0 */
  old?: number;
}): Promise<unknown>;
