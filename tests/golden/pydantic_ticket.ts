type Priority = "low" | "high";

type EmailInput = {
  /** @default "email" */
  kind?: "email";
  address: string;
};

type SmsInput = {
  /** @default "sms" */
  kind?: "sms";
  /** @pattern ^\+[0-9]+$ */
  phone: string;
};

/** A comment on a ticket; replies nest. */
type CommentInput = {
  author: string;
  /**
   * Markdown body.
   * @maxLength 2000
   */
  body: string;
  /** @default [] */
  replies?: CommentInput[];
};

/** Create a support ticket. */
type Ticket = {
  /**
   * Short summary.
   * @minLength 1
   */
  title: string;
  /** @default "low" */
  priority: Priority;
  /**
   * @format date-time
   * @default null
   */
  due: string | null;
  /**
   * @minimum 0
   * @maximum 1000
   * @default null
   */
  estimate_hours: number | null;
  /** @default "0" */
  budget: string;
  /** @default [] */
  tags: string[];
  notify: EmailOutput | SmsOutput;
  /** @default [] */
  thread: CommentOutput[];
  /** @default null */
  coords: [number, number] | null;
  /** @default {} */
  extra: { [key: string]: number };
};

type EmailOutput = {
  /** @default "email" */
  kind: "email";
  address: string;
};

type SmsOutput = {
  /** @default "sms" */
  kind: "sms";
  /** @pattern ^\+[0-9]+$ */
  phone: string;
};

/** A comment on a ticket; replies nest. */
type CommentOutput = {
  author: string;
  /**
   * Markdown body.
   * @maxLength 2000
   */
  body: string;
  /** @default [] */
  replies: CommentOutput[];
};

/**
 * Create a support ticket (pydantic models).
 * @param input Create a support ticket.
 */
declare function external_pydantic_ticket(input: {
  /**
   * Short summary.
   * @minLength 1
   */
  title: string;
  /** @default "low" */
  priority?: Priority;
  /**
   * @format date-time
   * @default null
   */
  due?: string | null;
  /**
   * @minimum 0
   * @maximum 1000
   * @default null
   */
  estimate_hours?: number | null;
  /** @default "0" */
  budget?: number | string;
  /** @default [] */
  tags?: string[];
  notify: EmailInput | SmsInput;
  /** @default [] */
  thread?: CommentInput[];
  /** @default null */
  coords?: [number, number] | null;
  /** @default {} */
  extra?: { [key: string]: number };
}): Promise<{
  id: number;
  ticket: Ticket;
  /** @format date-time */
  created: string;
  /** @default [] */
  watchers: string[];
  url: string;
}>;
