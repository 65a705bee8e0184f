import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOptions } from '../../bench/macro/options.js';
import { agentNodeSuffix, agentSuffix } from '../../bench/macro/output.js';
import { nodeVersionOf } from '../../bench/macro/sysinfo.js';

describe('bench options: the agent on another node binary', () => {
  it('parses --agent-node, default null (the bench’s own node)', () => {
    assert.equal(parseOptions([]).agentNode, null);
    assert.equal(parseOptions(['--agent-node', '/opt/node24/bin/node']).agentNode, '/opt/node24/bin/node');
    assert.throws(() => parseOptions(['--agent-node']), /needs a value/);
  });

  it('reads the version of a node binary and refuses what is not one', () => {
    assert.equal(nodeVersionOf(process.execPath), process.version);
    assert.throws(() => nodeVersionOf('/bin/false'), /not a runnable node binary/);
    assert.throws(() => nodeVersionOf('/nonexistent/node'), /not a runnable node binary/);
  });

  it('names result files after the agent’s node major only when it differs', () => {
    assert.equal(agentNodeSuffix({ node: 'v20.20.2', agentNode: 'v20.20.2' }), '');
    assert.equal(agentNodeSuffix({ node: 'v20.20.2', agentNode: 'v24.21.0' }), '-agent-node24');
  });

  it('parses --agent-client-sockets (default native) and names the net.Server variant’s files', () => {
    assert.equal(parseOptions([]).agentClientSockets, 'native');
    assert.equal(parseOptions(['--agent-client-sockets', 'node']).agentClientSockets, 'node');
    assert.throws(() => parseOptions(['--agent-client-sockets', 'uring']), /native or node/);
    const same = { node: 'v20.20.2', agentNode: 'v20.20.2' };
    assert.equal(agentSuffix(same, 'native'), '');
    assert.equal(agentSuffix(same, 'node'), '-node-sockets');
    assert.equal(agentSuffix({ node: 'v20.20.2', agentNode: 'v24.21.0' }, 'node'), '-agent-node24-node-sockets');
  });
});
