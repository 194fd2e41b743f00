type Commit = {
  sha: string;
  author: string;
  /** @format date-time */
  date: string;
  message: string;
  parents: string[];
};

/** Shows the commit logs. */
declare function external_git_log(input: {
  repo_path: string;
  /**
   * @minimum 1
   * @default 10
   */
  max_count?: number;
  /**
   * @format date
   * @default null
   */
  since?: string | null;
}): Promise<{
  commits: Commit[];
}>;
