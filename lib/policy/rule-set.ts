import type { ValidIdentity, ValidItem } from './schema.js';
import type { Access } from './types.js';

/** An identity granted a privilege, and the role through which it was granted. */
export interface Grant {
  readonly identity: ValidIdentity;
  readonly role: string;
}

export interface CompiledPrivilege {
  readonly name: string;
  readonly path: string;
  readonly query: readonly (readonly [string, string])[];
  readonly grants: readonly Grant[];
}

/** One node per canonical path segment; a privilege sits on the node of its last segment. */
export interface TrieNode {
  readonly children: Map<string, TrieNode>;
  readonly privileges: CompiledPrivilege[];
}

/** A compiled rule item: defaultAccess plus a segment trie of privileges. */
export interface RuleSet {
  readonly defaultAccess: Access;
  readonly root: TrieNode;
  readonly privileges: readonly CompiledPrivilege[];
}

const newNode = (): TrieNode => ({ children: new Map(), privileges: [] });

/** Compiles a validated item: resolves roles to per-privilege grants and builds the trie. */
export function buildRuleSet(item: ValidItem): RuleSet {
  const identities = new Map(item.identities.map((i) => [i.name, i]));
  const roles = new Map(item.roles.map((r) => [r.name, r.privileges]));
  const grants = new Map<string, Grant[]>();
  for (const a of item.roleAssignments) {
    for (const privName of roles.get(a.role) ?? []) {
      let list = grants.get(privName);
      if (!list) grants.set(privName, (list = []));
      for (const idName of a.identities) {
        const identity = identities.get(idName);
        if (identity && !list.some((g) => g.identity === identity)) list.push({ identity, role: a.role });
      }
    }
  }
  const root = newNode();
  const privileges: CompiledPrivilege[] = [];
  for (const p of item.privileges) {
    const compiled: CompiledPrivilege = Object.freeze({
      name: p.name,
      path: p.path,
      query: p.query,
      grants: Object.freeze(grants.get(p.name) ?? []),
    });
    let node = root;
    for (const seg of p.segments) {
      let next = node.children.get(seg);
      if (!next) node.children.set(seg, (next = newNode()));
      node = next;
    }
    node.privileges.push(compiled);
    privileges.push(compiled);
  }
  return Object.freeze({ defaultAccess: item.defaultAccess, root, privileges });
}

/** No rules at all: what an endpoint without a rule item gets (IMDS open; WireServer's root gate still applies). */
export const OPEN_RULE_SET: RuleSet = Object.freeze({ defaultAccess: 'allow', root: newNode(), privileges: [] });
