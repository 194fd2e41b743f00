/** Keys matching patterns. */
declare function external_pattern_properties(input: {
  S_name?: string;
  count?: number;
  /** Keys matching /^S_/: string. */
  [key: `S_${string}`]: string | undefined;
  /** Keys matching /^I_[0-9]+$/: number. */
  [key: `I_${string}`]: number;
}): Promise<unknown>;
