/** Look up a user by id or by email. */
declare function external_root_anyof_with_properties(input: {
  /** User id. */
  id: string;
  /** @format email */
  email?: string;
  /** @default false */
  include_deleted?: boolean;
} | {
  /** User id. */
  id?: string;
  /** @format email */
  email: string;
  /** @default false */
  include_deleted?: boolean;
}): Promise<unknown>;
