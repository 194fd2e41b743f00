/** Enums and consts of any JSON type. */
declare function external_enum_of_every_json_type(input: {
  mode: "fast" | "slow" | 3 | -1.5 | true | null;
  level?: 1 | 2 | 3;
  shape?: { kind: "circle"; r: [1, 2] };
  version: "v1";
}): Promise<unknown>;
