//! Hand-written Node-API entries for the calls every request makes: a session read by token,
//! a rate-limit hit and a permission check. napi-rs' generated method wrapper unwraps the
//! receiver, checks its type tag and class, tracks the borrow of `&self`, and copies each
//! string argument into a `String`. On the 2-core test machine that is ≈ 0.5 µs a call, a
//! fifth of the JS thread's whole cost of a session hit or a `checkLimit`. These entries read
//! their arguments (strings into a stack buffer) and start the same operation as the methods,
//! with the same validation and errors. Each is a plain function bound to one `NativeCache`:
//! its data is a boxed handle on that cache's core, freed by the function's finalizer.
//! `lib/bridge.js` installs them in place of the methods.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use napi_derive::napi;

use crate::bridge::NativeCache;
use crate::error::{CacheError, CacheResult};
use crate::names::keys::JsId;
use crate::near_cache::Check;

/// Strings up to this many bytes are read without an allocation.
const STACK_STR: usize = 1024;

fn expected(what: &str) -> CacheError {
    CacheError::InvalidArg(format!("{what} expected"))
}

/// The arguments of one call.
struct Args<const N: usize> {
    env: sys::napi_env,
    argv: [sys::napi_value; N],
}

impl<const N: usize> Args<N> {
    /// Argument `i` as a u32.
    fn u32(&self, i: usize, what: &str) -> CacheResult<u32> {
        let mut n = 0u32;
        // SAFETY: `env` and `argv` belong to the live callback (see `entry`).
        match unsafe { sys::napi_get_value_uint32(self.env, self.argv[i], &mut n) } {
            sys::Status::napi_ok => Ok(n),
            _ => Err(expected(what)),
        }
    }

    /// Argument `i` as an f64.
    fn f64(&self, i: usize, what: &str) -> CacheResult<f64> {
        let mut n = 0f64;
        // SAFETY: as in `u32`.
        match unsafe { sys::napi_get_value_double(self.env, self.argv[i], &mut n) } {
            sys::Status::napi_ok => Ok(n),
            _ => Err(expected(what)),
        }
    }

    fn is_number(&self, i: usize) -> bool {
        let mut t = sys::ValueType::napi_undefined;
        // SAFETY: as in `u32`.
        let status = unsafe { sys::napi_typeof(self.env, self.argv[i], &mut t) };
        status == sys::Status::napi_ok && t == sys::ValueType::napi_number
    }

    /// Argument `i`, a string, as UTF-8 (Node replaces lone surrogates), handed to `then`.
    fn str<R>(
        &self,
        i: usize,
        what: &str,
        then: impl FnOnce(&str) -> CacheResult<R>,
    ) -> CacheResult<R> {
        let (env, v) = (self.env, self.argv[i]);
        let mut len = 0usize;
        // SAFETY: as in `u32`; a null buffer asks for the length.
        if unsafe { sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len) }
            != sys::Status::napi_ok
        {
            return Err(expected(what));
        }
        let mut stack = [0u8; STACK_STR];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if len < STACK_STR {
            &mut stack[..]
        } else {
            heap.resize(len + 1, 0);
            &mut heap[..]
        };
        let mut copied = 0usize;
        // SAFETY: as in `u32`; `buf` has room for `len` bytes and the terminating NUL.
        let status = unsafe {
            sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), buf.len(), &mut copied)
        };
        if status != sys::Status::napi_ok || copied != len {
            return Err(expected(what));
        }
        then(std::str::from_utf8(&buf[..copied]).map_err(|_| expected(what))?)
    }

    /// Argument `i`, a string, owned.
    fn string(&self, i: usize, what: &str) -> CacheResult<String> {
        self.str(i, what, |s| Ok(s.to_string()))
    }

    /// Argument `i`, an id: a number or a string.
    fn id(&self, i: usize, what: &str) -> CacheResult<JsId> {
        if self.is_number(i) {
            Ok(JsId::Num(self.f64(i, what)?))
        } else {
            Ok(JsId::Str(self.string(i, what)?))
        }
    }
}

/// What an entry returns to JS.
trait Answer {
    /// # Safety
    /// `env` is the live callback's.
    unsafe fn into_js(self, env: sys::napi_env) -> sys::napi_value;
}

/// `undefined`.
impl Answer for () {
    unsafe fn into_js(self, _env: sys::napi_env) -> sys::napi_value {
        ptr::null_mut()
    }
}

/// `true`, `false` or `null`.
impl Answer for Option<bool> {
    unsafe fn into_js(self, env: sys::napi_env) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the live callback's env. Both calls only fail for a bad env or out pointer,
        // and then `v` stays null, which Node-API returns to JS as undefined.
        unsafe {
            match self {
                Some(b) => sys::napi_get_boolean(env, b, &mut v),
                None => sys::napi_get_null(env, &mut v),
            };
        }
        v
    }
}

/// The body of every entry: reads `N` arguments and the bound cache, runs `body`, and throws
/// its error as the method would (a TypeError or RangeError with its code).
///
/// # Safety
/// `env` and `info` are those of a callback made by [`bound_fn`].
unsafe fn entry<const N: usize, R: Answer>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    signature: &str,
    body: impl FnOnce(&NativeCache, &Args<N>) -> CacheResult<R>,
) -> sys::napi_value {
    let mut args = Args {
        env,
        argv: [ptr::null_mut(); N],
    };
    let mut argc = N;
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: the live callback's env and info.
    let status = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            args.argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    let r = if status != sys::Status::napi_ok || data.is_null() {
        Err(CacheError::Internal("a fast entry without its call info"))
    } else if argc < N {
        Err(CacheError::InvalidArg(format!(
            "{signature}: {N} arguments expected"
        )))
    } else {
        // SAFETY: `data` is the `Box<NativeCache>` leaked by `bound_fn`; its finalizer frees
        // it only once this function can no longer be called.
        body(unsafe { &*data.cast::<NativeCache>() }, &args)
    };
    match r {
        // SAFETY: the live callback's env.
        Ok(answer) => unsafe { answer.into_js(env) },
        Err(e) => {
            e.throw(&Env::from_raw(env));
            ptr::null_mut()
        }
    }
}

/// `sessionGetByToken(id, token)`.
unsafe extern "C" fn session_get_by_token(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let signature = "sessionGetByToken(id, token)";
    // SAFETY: called by Node-API as the callback `bound_fn` registered.
    unsafe {
        entry::<2, _>(env, info, signature, |cache, a| {
            let id = a.u32(0, "an operation id (a number)")?;
            a.str(1, "token: a string", |token| {
                cache.start_session_get_by_token(id, token)
            })
        })
    }
}

/// `rateHit(id, ip, endpoint, max, windowSec)`.
unsafe extern "C" fn rate_hit(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let signature = "rateHit(id, ip, endpoint, max, windowSec)";
    // SAFETY: called by Node-API as the callback `bound_fn` registered.
    unsafe {
        entry::<5, _>(env, info, signature, |cache, a| {
            let id = a.u32(0, "an operation id (a number)")?;
            let ip = a.id(1, "ip: a string or a number")?;
            let max = a.f64(3, "max: a number")?;
            let window_sec = a.f64(4, "windowSec: a number")?;
            a.str(2, "endpoint: a string", |endpoint| {
                cache.start_rate_hit(id, ip, endpoint, max, window_sec)
            })
        })
    }
}

/// `permCheckModule(id, userId, module)` → true, false, or null (the store read started).
unsafe extern "C" fn perm_check_module(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let signature = "permCheckModule(id, userId, module)";
    // SAFETY: called by Node-API as the callback `bound_fn` registered.
    unsafe {
        entry::<3, _>(env, info, signature, |cache, a| {
            let id = a.u32(0, "an operation id (a number)")?;
            let user_id = a.id(1, "userId: a string or a number")?;
            let module = a.string(2, "module: a string")?;
            cache.start_perm_check(id, user_id, Check::Module(module))
        })
    }
}

/// `permCheckPage(id, userId, page, action)`, as [`perm_check_module`].
unsafe extern "C" fn perm_check_page(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let signature = "permCheckPage(id, userId, page, action)";
    // SAFETY: called by Node-API as the callback `bound_fn` registered.
    unsafe {
        entry::<4, _>(env, info, signature, |cache, a| {
            let id = a.u32(0, "an operation id (a number)")?;
            let user_id = a.id(1, "userId: a string or a number")?;
            let page = a.string(2, "page: a string")?;
            let action = a.string(3, "action: a string")?;
            cache.start_perm_check(id, user_id, Check::Page { page, action })
        })
    }
}

unsafe extern "C" fn drop_bound(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: the pointer `bound_fn` leaked, finalized exactly once (with its function).
    drop(unsafe { Box::from_raw(data.cast::<NativeCache>()) });
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// A JS function named `name` that runs `cb` with a handle on `cache`'s core.
fn bound_fn<'env>(
    cache: &NativeCache,
    env: &'env Env,
    name: &str,
    cb: Callback,
) -> napi::Result<Unknown<'env>> {
    let bound = Box::into_raw(Box::new(cache.same_core()));
    let raw = env.raw();
    let mut f = ptr::null_mut();
    // SAFETY: plain Node-API calls on the JS thread; `bound` is freed by the finalizer, or
    // here when the function could not be made (then nothing can call it).
    unsafe {
        let made = sys::napi_create_function(
            raw,
            name.as_ptr().cast(),
            name.len() as isize,
            Some(cb),
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
            return Err(napi::Error::from_reason(format!(
                "could not make the {name} entry"
            )));
        }
        Ok(Unknown::from_raw_unchecked(raw, f))
    }
}

#[napi]
impl NativeCache {
    /// A function `(id, token) => void` that does what `sessionGetByToken` does, without
    /// napi-rs' per-call wrapper (src/api/fast.rs); lib/bridge.js installs it in place of the
    /// method.
    #[napi]
    pub fn fast_session_get_by_token<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_fn(self, env, "sessionGetByToken", session_get_by_token)
    }

    /// A function `(id, ip, endpoint, max, windowSec) => void` that does what `rateHit`
    /// does, as [`fast_session_get_by_token`](Self::fast_session_get_by_token).
    #[napi]
    pub fn fast_rate_hit<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_fn(self, env, "rateHit", rate_hit)
    }

    /// `(id, userId, module) => boolean | null`: `permCheckModule`, as
    /// [`fast_session_get_by_token`](Self::fast_session_get_by_token).
    #[napi]
    pub fn fast_perm_check_module<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_fn(self, env, "permCheckModule", perm_check_module)
    }

    /// `(id, userId, page, action) => boolean | null`: `permCheckPage`, as
    /// [`fast_session_get_by_token`](Self::fast_session_get_by_token).
    #[napi]
    pub fn fast_perm_check_page<'env>(&self, env: &'env Env) -> napi::Result<Unknown<'env>> {
        bound_fn(self, env, "permCheckPage", perm_check_page)
    }
}
