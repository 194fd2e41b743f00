type RecursiveRootInput = {
  name: string;
  replies?: RecursiveRootInput[];
};

/** The root schema references itself (#). */
declare function external_recursive_root(input: RecursiveRootInput): Promise<unknown>;
