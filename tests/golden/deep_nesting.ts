/** Nested objects render as indented blocks. */
declare function external_deep_nesting(input: {
  a: {
    b: {
      c: {
        d: {
          e: string;
        }[];
      };
    };
  };
}): Promise<unknown>;
