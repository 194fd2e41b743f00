/** Get the weather forecast for a location. */
declare function external_get_forecast(input: {
  location: {
    city: string;
    /**
     * @minLength 2
     * @maxLength 2
     */
    country?: string;
  } | {
    /**
     * @minimum -90
     * @maximum 90
     */
    lat: number;
    /**
     * @minimum -180
     * @maximum 180
     */
    lon: number;
  };
  /**
   * @minimum 1
   * @maximum 16
   * @default 3
   */
  days?: number;
  /** @default "metric" */
  units?: "metric" | "imperial";
}): Promise<{
  days: {
    /** @format date */
    date: string;
    min: number;
    max: number;
    summary?: string;
  }[];
}>;
