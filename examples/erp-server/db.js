'use strict';
// A tiny in-memory "database" standing in for the ERP's Prisma models: users, roles with their
// permission sets, login sessions and approvals. Every read is async, as a real query would be.

const crypto = require('crypto');

const tick = () => new Promise((resolve) => setImmediate(resolve));

function passwordHash(password, salt) {
  return crypto.scryptSync(password, salt, 32).toString('hex');
}

function createDb() {
  const roles = new Map([
    [1, { id: 1, name: 'SUPER_ADMIN', permissions: { modules: ['*'], pages: {} } }],
    [
      2,
      {
        id: 2,
        name: 'HUB_INCHARGE',
        permissions: { modules: ['INVENTORY', 'APPROVALS'], pages: { 'inventory-items': ['view'] } },
      },
    ],
  ]);
  const users = new Map();
  const addUser = (id, username, password, roleId, name) => {
    const salt = crypto.randomBytes(8).toString('hex');
    users.set(id, { id, username, name, role_id: roleId, tenant_id: 'tenant-demo', salt, hash: passwordHash(password, salt) });
  };
  addUser(1, 'admin', 'admin-pass', 1, 'Asha Admin');
  addUser(2, 'hub', 'hub-pass', 2, 'Hari Hub');

  const sessions = new Map(); // token hash → row (the raw token is never stored)
  const approvals = new Map([
    [101, { id: 101, title: 'Purchase order PO-101', status: 'PENDING', approvedBy: null }],
    [102, { id: 102, title: 'Stock transfer ST-102', status: 'PENDING', approvedBy: null }],
  ]);
  const items = new Map([
    [1, { id: 1, sku: 'BOLT-M8', qty: 1200 }],
    [2, { id: 2, sku: 'NUT-M8', qty: 950 }],
  ]);
  const queries = { sessions: 0, userPermissions: 0, rolePermissions: 0 };

  const publicUser = (u) => ({ id: u.id, username: u.username, name: u.name, role: roles.get(u.role_id).name, role_id: u.role_id, tenant_id: u.tenant_id });

  return {
    queries,
    items,
    approvals,

    async verifyLogin(username, password) {
      await tick();
      const u = [...users.values()].find((x) => x.username === username);
      if (!u) return null;
      const given = Buffer.from(passwordHash(String(password), u.salt), 'hex');
      return crypto.timingSafeEqual(given, Buffer.from(u.hash, 'hex')) ? publicUser(u) : null;
    },

    async createSession(tokenHash, user, ttlMs) {
      await tick();
      const row = {
        user_id: user.id,
        tenant_id: user.tenant_id,
        role: user.role,
        expires_at: new Date(Date.now() + ttlMs).toISOString(),
      };
      sessions.set(tokenHash, row);
      return row;
    },

    async deleteSession(tokenHash) {
      await tick();
      return sessions.delete(tokenHash);
    },

    // Every session row of a user (the operator page's "revoke all") → how many.
    async deleteUserSessions(userId) {
      await tick();
      let n = 0;
      for (const [hash, row] of sessions) if (String(row.user_id) === String(userId) && sessions.delete(hash)) n++;
      return n;
    },

    // The session loader's query: the row of a token hash, with its user, or null.
    async findSession(tokenHash) {
      queries.sessions++;
      await tick();
      const row = sessions.get(tokenHash);
      if (!row || Date.parse(row.expires_at) <= Date.now()) return null;
      const u = users.get(row.user_id);
      return u ? { ...row, user: publicUser(u) } : null;
    },

    // The permission loaders' queries: a snapshot { role, modules, pages }.
    async userPermissions(userId) {
      queries.userPermissions++;
      await tick();
      const u = users.get(Number(userId));
      if (!u) return null;
      const role = roles.get(u.role_id);
      return { role: role.name, modules: [...role.permissions.modules], pages: structuredClone(role.permissions.pages) };
    },

    async rolePermissions(roleId) {
      queries.rolePermissions++;
      await tick();
      const role = roles.get(Number(roleId));
      return role ? { role: role.name, modules: [...role.permissions.modules], pages: structuredClone(role.permissions.pages) } : null;
    },

    // prisma.role.update / prisma.user.findMany of the guide's roleService.
    async updateRole(roleId, permissions) {
      await tick();
      const role = roles.get(Number(roleId));
      if (!role) return null;
      role.permissions = { modules: [...(permissions.modules || [])], pages: structuredClone(permissions.pages || {}) };
      return role;
    },

    async usersWithRole(roleId) {
      await tick();
      return [...users.values()].filter((u) => u.role_id === Number(roleId)).map(publicUser);
    },
  };
}

module.exports = { createDb };
