/** The shape of a growlm subcommand (src/cli/<name>.ts). */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Runs with the arguments after the command name; throws on bad input. */
  run(argv: string[]): void | Promise<void>;
}
