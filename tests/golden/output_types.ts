/**
 * Output schemas give the return type.
 * @returns The stored record.
 */
declare function external_output_types(input: {
  id: string;
}): Promise<{
  id: string;
  size: number;
  meta: { [key: string]: string } | null;
}>;
