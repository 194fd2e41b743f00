/** A tree node. */
type Node = {
  label: string;
  children?: Node[];
};

/** A tree references itself by name. */
declare function external_recursive_tree(input: {
  root: Node;
}): Promise<unknown>;
