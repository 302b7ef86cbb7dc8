'use strict';
// services/roleService.js: the guide's section 8, with the in-memory db in place of Prisma.
const { pubsub } = require('../cache');

function roleService(db) {
  async function updateRolePermissions(roleId, permissions) {
    await db.updateRole(roleId, permissions);

    // Invalidate all affected caches across all nodes
    await pubsub.invalidateRolePermissions(roleId);

    // Get all users with this role and invalidate their permission caches
    const users = await db.usersWithRole(roleId);
    for (const user of users) {
      await pubsub.invalidateUserPermissions(user.id);
    }
    return users.length;
  }
  return { updateRolePermissions };
}

module.exports = { roleService };
