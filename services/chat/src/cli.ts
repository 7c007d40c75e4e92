/**
 * Runs a command-line tool: its failure is one line naming the problem on
 * stderr and exit code 1, not a stack trace.
 */
export function runTool(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
