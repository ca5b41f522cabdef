import { startLocalAwsEndpoints } from './local/aws-endpoints';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { makeIdempotent, IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
test('probe', async () => {
  const aws = await startLocalAwsEndpoints();
  Object.assign(process.env, aws.env);
  const f = makeIdempotent(async (x: { k: string }) => ({ ok: x.k }), { persistenceStore: new DynamoDBPersistenceLayer({ tableName: 'probe-table' }), config: new IdempotencyConfig({ eventKeyJmesPath: 'k' }) });
  try { console.log(await f({ k: 'a' })); console.log(await f({ k: 'a' })); } catch (e) { console.log(e, (e as any).cause); }
  await aws.close();
});
