/** A description with *\/ inside cannot end the comment. *\/ declare const x: 1; /* */
declare function external_comment_injection(input: {
  /**
   * Closes early *\/ const oops = 1; /* and
   * spans lines *\/
   */
  a: string;
  /**
   * @pattern ^/\*.*\*\/$
   * @default "/* x *\/"
   */
  b?: string;
}): Promise<unknown>;
