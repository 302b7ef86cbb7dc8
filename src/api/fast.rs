//! A hand-written Node-API entry for the hottest call, a session read by token (every
//! authenticated request makes one). napi-rs' generated method wrapper unwraps the receiver,
//! checks its type tag and class and copies each string argument into a `String`: ≈ 400 ns a
//! call on the 2-core test machine, a seventh of the JS thread's whole cost of a session hit.
//! This entry reads its two arguments (the string into a stack buffer) and starts the same
//! operation. It is a plain function bound to one `NativeCache`: its data is a boxed handle on
//! that cache's core, freed by the function's finalizer. Validation and errors are those of
//! `sessionGetByToken`.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use napi_derive::napi;

use crate::bridge::NativeCache;
use crate::error::{CacheError, CacheResult};

/// Tokens up to this many bytes are read without an allocation.
const STACK_TOKEN: usize = 1024;

/// `(id, token)` of a call, the token as UTF-8 (Node replaces lone surrogates).
///
/// # Safety
/// `env` and `argv` come from the live callback of this call.
unsafe fn read_args<R>(
    env: sys::napi_env,
    argv: [sys::napi_value; 2],
    then: impl FnOnce(u32, &str) -> CacheResult<R>,
) -> CacheResult<R> {
    let invalid = |what: &str| CacheError::InvalidArg(format!("{what} expected"));
    let mut id = 0u32;
    if unsafe { sys::napi_get_value_uint32(env, argv[0], &mut id) } != sys::Status::napi_ok {
        return Err(invalid("an operation id (a number)"));
    }
    let mut len = 0usize;
    if unsafe { sys::napi_get_value_string_utf8(env, argv[1], ptr::null_mut(), 0, &mut len) }
        != sys::Status::napi_ok
    {
        return Err(invalid("token: a string"));
    }
    let mut stack = [0u8; STACK_TOKEN];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if len < STACK_TOKEN {
        &mut stack[..]
    } else {
        heap.resize(len + 1, 0);
        &mut heap[..]
    };
    let mut copied = 0usize;
    let status = unsafe {
        sys::napi_get_value_string_utf8(
            env,
            argv[1],
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut copied,
        )
    };
    if status != sys::Status::napi_ok || copied != len {
        return Err(invalid("token: a string"));
    }
    let token = std::str::from_utf8(&buf[..copied]).map_err(|_| invalid("token: UTF-8"))?;
    then(id, token)
}

/// The callback: `sessionGetByToken(id, token)` of the cache in `data`.
unsafe extern "C" fn session_get_by_token(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = 2usize;
    let mut argv = [ptr::null_mut(); 2];
    let mut data: *mut c_void = ptr::null_mut();
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    let r = if status != sys::Status::napi_ok || data.is_null() {
        Err(CacheError::Internal("sessionGetByToken: no call info"))
    } else if argc < 2 {
        Err(CacheError::InvalidArg(
            "sessionGetByToken(id, token): 2 arguments expected".into(),
        ))
    } else {
        // SAFETY: `data` is the `Box<NativeCache>` made by `fast_session_get_by_token`; the
        // finalizer frees it only once this function can no longer be called.
        let cache = unsafe { &*data.cast::<NativeCache>() };
        unsafe {
            read_args(env, argv, |id, token| {
                cache.start_session_get_by_token(id, token)
            })
        }
    };
    if let Err(e) = r {
        e.throw(&Env::from_raw(env));
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_bound(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the pointer `fast_session_get_by_token` leaked, finalized exactly once.
    drop(unsafe { Box::from_raw(data.cast::<NativeCache>()) });
}

#[napi]
impl NativeCache {
    /// A function `(id, token) => void` that does what `sessionGetByToken` does, without
    /// napi-rs' per-call wrapper (src/api/fast.rs); lib/bridge.js installs it in place of the
    /// method.
    #[napi]
    pub fn fast_session_get_by_token<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        let bound = Box::into_raw(Box::new(self.same_core()));
        let raw = env.raw();
        let mut f = ptr::null_mut();
        let name = "sessionGetByToken";
        // SAFETY: plain Node-API calls on the JS thread; `bound` is freed by the finalizer
        // (or here, when the function could not be made).
        unsafe {
            let made = sys::napi_create_function(
                raw,
                name.as_ptr().cast(),
                name.len() as isize,
                Some(session_get_by_token),
                bound.cast(),
                &mut f,
            );
            if made != sys::Status::napi_ok
                || sys::napi_add_finalizer(
                    raw,
                    f,
                    bound.cast(),
                    Some(drop_bound),
                    ptr::null_mut(),
                    ptr::null_mut(),
                ) != sys::Status::napi_ok
            {
                drop(Box::from_raw(bound));
                return Err(napi::Error::from_reason(
                    "could not make the sessionGetByToken entry",
                ));
            }
            Ok(Unknown::from_raw_unchecked(raw, f))
        }
    }
}
