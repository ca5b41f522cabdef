/**
 * The task sizes Fargate accepts: for each CPU value (CPU units), which memory values (MiB) may go
 * with it. Amazon ECS Developer Guide, "Amazon ECS task definition parameters for Fargate", Task
 * size: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
 */
export const FARGATE_MEMORY: Readonly<Record<number, (memory: number) => boolean>> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

/** What is wrong with a Fargate task size, or undefined when Fargate accepts it. */
export function fargateSizeProblem(
  cpu: number,
  memory: number,
): { field: 'cpu' | 'memory'; message: string } | undefined {
  const allowsMemory = FARGATE_MEMORY[cpu];
  if (allowsMemory === undefined)
    return {
      field: 'cpu',
      message: `${cpu} is not a Fargate size; use one of ${Object.keys(FARGATE_MEMORY).join(', ')}`,
    };
  if (!allowsMemory(memory))
    return {
      field: 'memory',
      message: `${memory} MiB does not fit cpu ${cpu} on Fargate; see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size`,
    };
  return undefined;
}
