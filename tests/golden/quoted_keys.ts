/** Property names that are not identifiers are quoted. */
declare function external_quoted_keys(input: {
  "content-type": string;
  "x y"?: number;
  "2fa"?: boolean;
  default: string;
  $ref_like?: string;
  "ünïcode"?: string;
  "a\"b"?: string;
}): Promise<unknown>;
