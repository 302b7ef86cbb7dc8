'use strict';
// Permission checks in front of routes (guide section 2): module access, page actions.
const { permissionCache } = require('../cache');

const requireModule = (module) => async (req, res, next) => {
  const hasAccess = await permissionCache.hasModulePermission(req.user.id, module);
  if (!hasAccess) return res.status(403).json({ error: `No access to ${module}` });
  next();
};

const requirePage = (page, action) => async (req, res, next) => {
  const allowed = await permissionCache.hasPagePermission(req.user.id, page, action);
  if (!allowed) return res.status(403).json({ error: `No permission to ${action} ${page}` });
  next();
};

module.exports = { requireModule, requirePage };
