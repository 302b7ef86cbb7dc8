//! One connect or resolution at a time, shared by every caller waiting for its result.

/// One attempt at a time (a connect, a resolution through the sentinels), shared by every
/// caller that needs its result meanwhile: concurrent first calls wait for the same attempt
/// instead of queueing behind a lock for one attempt each.
pub struct SharedAttempt<T> {
    current: parking_lot::Mutex<Option<tokio::sync::watch::Receiver<Option<T>>>>,
}

impl<T: Clone + Send + Sync + 'static> Default for SharedAttempt<T> {
    fn default() -> Self {
        SharedAttempt {
            current: parking_lot::Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SharedAttempt<T> {
    /// Joins the attempt in progress, or starts `start()` as a new one (on its own task: it
    /// runs to its end even if every waiter gives up), and waits for its result for at most
    /// `bound` from now. `None` when the bound passed first (or the attempt was lost).
    pub async fn join<F, Fut>(&self, start: F, bound: std::time::Duration) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + bound;
        let mut rx = {
            let mut current = self.current.lock();
            let running = current
                .as_ref()
                .filter(|rx| rx.borrow().is_none() && rx.has_changed().is_ok());
            match running {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    let attempt = start();
                    napi::bindgen_prelude::spawn(async move {
                        let v = attempt.await;
                        let _ = tx.send(Some(v));
                    });
                    *current = Some(rx.clone());
                    rx
                }
            }
        };
        let result = match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(v)) => v.clone(),
            _ => None,
        };
        result
    }
}
