import type { APIGatewayProxyEvent } from 'aws-lambda';
import { cidrMatcher, type LocalApiGateway, startLocalApiGateway } from '../../local/api-gateway';

describe('local API Gateway', () => {
  let gateway: LocalApiGateway;
  const received: APIGatewayProxyEvent[] = [];

  beforeAll(async () => {
    gateway = await startLocalApiGateway({
      allowedCidrs: ['127.0.0.0/8', '198.51.100.0/24'],
      sourceIpHeader: 'x-test-source-ip',
      handler: async (event) => {
        received.push(event);
        return { statusCode: 202, body: JSON.stringify({ builds: [] }) };
      },
    });
  });
  afterAll(() => gateway.close());
  beforeEach(() => received.splice(0));

  test('GIVEN a caller inside the allowlist WHEN it posts a form-encoded webhook THEN the function gets the REST proxy event', async () => {
    const res = await fetch(`${gateway.url}/webhooks/backlog?token=abc`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'payload=%7B%7D',
    });
    expect(res.status).toBe(202);
    const [event] = received;
    expect(event?.pathParameters).toEqual({ provider: 'backlog' });
    expect(event?.queryStringParameters).toEqual({ token: 'abc' });
    expect(event?.body).toBe('payload=%7B%7D');
    expect(event?.isBase64Encoded).toBe(false);
    expect(event?.requestContext.identity.sourceIp).toBe('127.0.0.1');
  });

  test('GIVEN a caller outside the allowlist WHEN it posts THEN it gets the explicit-deny 403 and the function is not called', async () => {
    const res = await fetch(`${gateway.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'x-test-source-ip': '203.0.113.9' },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('explicit deny');
    expect(received).toHaveLength(0);
  });

  test('GIVEN a body that is not UTF-8 WHEN posted THEN it arrives base64-encoded as API Gateway sends binary', async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
    await fetch(`${gateway.url}/webhooks/gitlab`, { method: 'POST', body: bytes });
    expect(received[0]?.isBase64Encoded).toBe(true);
    expect(Buffer.from(received[0]?.body ?? '', 'base64')).toEqual(bytes);
  });

  test('GIVEN another path or method THEN API Gateway answers 403 without calling the function', async () => {
    expect((await fetch(`${gateway.url}/hooks/github`, { method: 'POST', body: '{}' })).status).toBe(403);
    expect((await fetch(`${gateway.url}/webhooks/github`)).status).toBe(403);
    expect(received).toHaveLength(0);
  });

  test.each([
    ['54.248.107.22', true],
    ['198.51.100.200', true],
    ['::ffff:127.0.0.1', true],
    ['203.0.113.1', false],
    ['2001:db8::1', false],
  ])('cidrMatcher: %s allowed is %s', (address, allowed) => {
    expect(cidrMatcher(['54.248.107.22/32', '198.51.100.0/24', '127.0.0.0/8'])(address)).toBe(allowed);
  });
});
