'use strict';
// The business routes: inventory and reports behind permission checks, approvals under a
// distributed lock, role administration with cache invalidation.
const express = require('express');
const { distributedLock } = require('../cache');
const { authMiddleware } = require('../middleware/auth');
const { requireModule, requirePage } = require('../middleware/permissions');
const { roleService } = require('../services/roleService');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function apiRoutes(db, { approvalWorkMs = 300 } = {}) {
  const router = express.Router();
  const roles = roleService(db);
  router.use(authMiddleware);

  router.get('/me', (req, res) => {
    res.json({ user: req.user, sessionSource: req.sessionSource });
  });

  router.get('/inventory/items', requireModule('INVENTORY'), (req, res) => {
    res.json({ items: [...db.items.values()] });
  });

  router.put('/inventory/items/:id', requireModule('INVENTORY'), requirePage('inventory-items', 'edit'), express.json(), (req, res) => {
    const item = db.items.get(Number(req.params.id));
    if (!item) return res.status(404).json({ error: 'No such item' });
    if (Number.isInteger(req.body?.qty)) item.qty = req.body.qty;
    res.json({ item });
  });

  router.get('/reports/sales', requireModule('REPORTS'), (req, res) => {
    res.json({ report: 'sales', total: 123456 });
  });

  // One approval at a time across every app node: the guide's withLock (section 4).
  router.post('/approvals/:id/approve', requireModule('APPROVALS'), async (req, res) => {
    const approvalId = Number(req.params.id);
    const approval = db.approvals.get(approvalId);
    if (!approval) return res.status(404).json({ error: 'No such approval' });
    try {
      const { result, fence } = await distributedLock.withLock('approval', approvalId, async () => {
        if (approval.status !== 'PENDING') return { ok: false, status: approval.status };
        await sleep(approvalWorkMs); // the slow part: ledger postings, notifications …
        approval.status = 'APPROVED';
        approval.approvedBy = req.user.id;
        return { ok: true, status: approval.status };
      });
      if (!result.ok) return res.status(409).json({ error: `Already ${result.status.toLowerCase()}` });
      res.json({ approval, fence });
    } catch (err) {
      if (err.code === 'ELOCKED') return res.status(409).json({ error: 'Approval in progress on another request', heldBy: err.heldBy });
      res.status(503).json({ error: `Could not lock the approval: ${err.message}` });
    }
  });

  router.put('/roles/:id/permissions', requireModule('ADMIN'), express.json(), async (req, res) => {
    const { modules, pages } = req.body || {};
    if (!Array.isArray(modules)) return res.status(400).json({ error: 'modules must be an array' });
    const usersInvalidated = await roles.updateRolePermissions(Number(req.params.id), { modules, pages });
    res.json({ roleId: Number(req.params.id), usersInvalidated });
  });

  return router;
}

module.exports = { apiRoutes };
