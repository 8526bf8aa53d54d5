// Package sandbox is a faithful fake of the three provider APIs
// coinsaga talks to: SUD (create_order, query_order, endpoint discovery),
// MOGS game coins (getbalance, pay, cancelpay, present) and YSDK/Midas mpay
// (get_balance_m, pay_m, cancel_pay_m, present_m), plus an admin API and
// fault injection, all on one http.Handler.
//
// It checks signatures with its own implementation (never the clients'), so
// a client and the sandbox that agree are a cross-check of the spec.
//
// # Paths
//
//	POST /sud/create_order, POST /sud/query_order    Sud-Auth signed JSON
//	GET  /sud/asc/{hex HMAC-MD5(key=app_secret, data=app_id)}   discovery
//	POST /mogs/{getbalance,pay,cancelpay,present}?appid=&app_plat=&openid=&js_code=
//	GET  /mpay/{get_balance_m,pay_m,cancel_pay_m,present_m}?...&sig=   + cookie
//	GET/PUT /_sandbox/accounts/{provider}/{appid}/{openid}
//	GET  /_sandbox/bills[?provider=&openid=&appid=]
//	GET  /_sandbox/sud/orders
//	PUT  /_sandbox/sud/notify   {"url":"..."}: where SUD's order notifications go
//	GET/POST/DELETE /_sandbox/faults
//	POST /_sandbox/clock {"advance":"49h"}   moves the clock, answers {"now"}
//
// Clients reach it with these base URLs, for a sandbox at B: MOGS B+"/mogs",
// Midas B (its paths begin with /mpay), SUD discovery B+"/sud/asc" (or the
// create_order and query_order URLs directly).
//
// The admin API answers loopback peers only unless Config.AllowRemoteAdmin.
// Admin account reads show the true state (debits hidden by a visibility
// delay included); provider balance reads show what a client would see.
//
// # Behaviour
//
//   - Accounts are created on first touch by a provider call with
//     Config.InitialBalance purchased coins (balance = save_amt = save_sum,
//     gen_balance 0). Gifted coins are spent first: used_gen_amt =
//     min(gen_balance, amt). A cancel returns the whole amount to balance,
//     the gifted part to gen_balance, and takes it off cost_sum. present and
//     present_m add to balance, gen_balance and present_sums.
//   - The sandbox clock is Config.Now moved on by AdvanceClock (or POST
//     /_sandbox/clock); bills, their expiry, visibility delays and the Midas
//     ts check all read it, and Sandbox.Now returns it.
//   - bill_no / billno is an idempotency key per (provider, appid) for 48 h
//     after the first pay, measured with the sandbox clock and expired
//     lazily when the key is next used: after it, a cancel is "bill not
//     found" and a pay with the same number charges again as a new bill.
//     A repeated pay or present never applies twice, also when the bill was
//     cancelled meanwhile. A refused pay (insufficient balance, bad
//     parameters, login) records nothing, so its bill_no can succeed later.
//     Expired bills stay in the admin bill list.
//   - SetAccount (and PUT on an account) overwrites balance and gen_balance
//     and drops debits still hidden by a visibility delay. A new account so
//     made has save_amt = save_sum = balance - gen_balance and present_sums
//     = gen_balance; an existing one keeps its counters.
//   - SUD executes an order as it creates it: the order is EXECUTE_SUCCESS
//     at once unless a sud.create_order fault sets execute_delay_ms (then it
//     is EXECUTING that long by Config.Now) or execute_fail_rate (then it
//     ends EXECUTE_FAIL with that probability, by the seeded dice). The
//     status is computed from the clock when it is read (query_order, the
//     admin order list), so executing orders cost no timer each; the delay
//     and the outcome are fixed when the order is created. CREATED is never
//     shown. A failed order keeps its out_order_id, unique per sandbox.
//   - Order notifications: once a notify URL is set (PUT /_sandbox/sud/notify
//     or SetSUDNotifyURL), every order created from then on is notified when
//     its execution ends: a POST of {"notify_id","notify_time","app_id",
//     "notify_event":"sud.mg.merchant.order.changed","data":{order fields,
//     "status"}} with Content-Type application/json;charset=utf-8 and the
//     headers Sud-AppId, Sud-Timestamp (unix seconds of the sandbox clock),
//     Sud-Nonce and Sud-Signature (the Sud-Auth HMAC over the exact body).
//     Without a delay it may arrive before the create_order reply. Anything
//     but HTTP 200 with {"ret_code":0,"ret_msg":"SUCCESS"} is a refusal: the
//     notification is signed anew and sent again after 100, 200, 400 and
//     800 ms, then abandoned (SUDNotifyStats counts all three outcomes). One
//     scheduler goroutine, alive only while notifications are pending, and
//     at most 8 deliveries at a time serve every order. A notification still
//     pending goes to the URL in force when it is sent; with none, it is
//     dropped.
//   - ASSUMPTION (SUD notify): SUD's docs say it retries, not how often;
//     notify_id (hex SHA-256 of order_id and status) stays the same across
//     a notification's attempts; notify_time is unix milliseconds as a
//     string (the docs' example); round_id and seq are left out. The docs
//     call any ret_code 0 a success; the sandbox also wants ret_msg
//     "SUCCESS", the documented answer.
//
// # State file
//
// The sandbox keeps its state in memory. With Config.StateFile (Open; serve
// --sandbox uses <data-dir>/sandbox.json) it also keeps it in that file, so
// that a restarted sandbox knows the accounts, bills, SUD orders and clock
// of the one before: it loads the file as it opens, and writes it after
// every change, at most every SaveInterval (200 ms) by one goroutine, and a
// last time on Close. Each write replaces the file whole (a temporary file,
// fsynced, renamed over it). The file holds every account, every bill (live
// ones with their hidden debits, expired ones for the bill list), every SUD
// order with when and how its execution ends and whether its notification
// is still owed (sent once a notify URL is set again), the clock offset of
// AdvanceClock and the sequences behind generated bill numbers and order
// ids. Faults and the notify URL are not kept: a restarted sandbox starts
// without faults, and its owner sets the URL again.
//
// A file that is not a sandbox state (not JSON, cut short, another format
// or version, a bill without its account) is refused with ErrBadState and
// left as it is.
//
// This is a development fake: a crash may lose the last 200 ms of state.
// To the saga that is a provider that forgot a bill: a cancel of it is
// "not found" (the order fails: nothing was charged, as far as the
// provider knows) and a pay under its number charges anew. The sandbox's
// books and the saga's may then differ by that bill; the saga never
// charges twice by its own doing.
//
// # Faults
//
// A Fault is set per endpoint name (sud.create_order, sud.query_order,
// mogs.getbalance, mogs.pay, mogs.cancelpay, mogs.present,
// midas.get_balance_m, midas.pay_m, midas.cancel_pay_m, midas.present_m) or
// for "*" (every endpoint without a fault of its own). Per call, with the
// seeded dice of Config.Seed:
//
//   - error_rate: HTTP 500, nothing happens.
//   - busy_rate: the provider's busy code (MOGS -1, on cancelpay -1 or
//     90016 at random; Midas 1002 or 3000111 at random; SUD 10001),
//     nothing happens.
//   - otherwise the call takes effect; then latency_ms passes, plus a
//     uniform random 0 to latency_jitter_ms more; then, with
//     drop_reply_rate, the connection is closed without a byte of reply.
//     Latency is applied after the effect on purpose: an effect is never
//     applied after the client gave up, but a client that gave up may have
//     been charged, exactly the case a real slow provider creates. A client
//     that hangs up during the latency gets no reply; the effect stays.
//   - visibility_delay_ms (on mogs.pay, midas.pay_m or "*"): each debit
//     stays out of balance reads (balance, gen_balance, cost_sum) for that
//     long after it happened, by Config.Now. The pay reply itself already
//     shows the balance after the debit, as the real services do.
//   - execute_delay_ms and execute_fail_rate (on sud.create_order or "*"
//     only): see Behaviour. The fail dice are rolled only when the rate is
//     set.
//
// Go's http.Transport retries an idempotent request (every Midas call is a
// GET) once on a reused connection that closed without a reply, so with a
// drop_reply_rate below 1 a dropped Midas pay_m may come back as "duplicate
// billno" (1002215) rather than as a transport error. Both are honest
// outcomes the client must handle.
//
// # Assumptions (not public; the clients must make the same ones)
//
//   - ASSUMPTION (MOGS codes): MOGS follows WeChat mini-game midas v1: -1
//     system busy, 90010 login expired, 90012 bill_no already exists (the
//     reply repeats bill_no), 90013 insufficient balance, 90018 parameter
//     error; cancelpay 90000 bill not found, 90015 already cancelled.
//     90018 covers: appid missing or unknown, app_plat != 1, openid or
//     js_code missing, a body that is not JSON of the documented types,
//     os_plat_id != 1, amt outside 1..2^31-1 (pay, present), bill_no missing
//     (cancelpay), a bill_no that is not 1-63 characters of [0-9A-Za-z_-]
//     or starts with "_" (pay, present, cancelpay; providers.md, Learned
//     since: bill numbers). Checks run in that order, except that the login
//     (js_code "expired" plays an expired login: 90010) is checked after
//     the query, body and os_plat_id, before amt and bill_no.
//   - ASSUMPTION (MOGS replies): errmsg is "ok" on success; bill_no is echoed
//     as a JSON string although the seed types it int (the caller's key is a
//     string); a bill_no MOGS generates itself is all digits. cancelpay of a
//     present, of another player's bill, or of an expired bill is 90000.
//     is_first is true while save_amt is 0.
//   - Midas cookie (seed ysdk-midas-get-balance.md): session_type one of
//     kp_actoken, wc_actoken, st_dummy, openkey; session_id the literal
//     "openid" with kp_actoken and openkey, "hy_gameid" with wc_actoken and
//     st_dummy; org_loc the request path; values urlencoded, so a value
//     holding a byte other than A-Z a-z 0-9 - _ . ~ + or a %XX escape (a raw
//     "/" in org_loc, say) is refused. ASSUMPTION: every such refusal is
//     1001.
//   - ASSUMPTION (Midas parameters): openid, openkey, appid, ts (integer),
//     sig, pf, pfkey and zoneid are required and non-empty; pay_m and
//     cancel_pay_m also amt (1..2^31-1) and billno; present_m billno and
//     presenttimes. A billno that is not 1-63 characters of [0-9A-Za-z_-]
//     or starts with "_" is 1001 (providers.md, Learned since: bill
//     numbers, assumed for Midas as for WeChat midas). A parameter given twice, accounttype other than
//     common/security, format other than json/jsonp_<identifier>, or an
//     appid other than the configured offer id is 1001. ts more than 5
//     minutes from the sandbox clock is 1001 (providers.md, Learned since:
//     timestamps). accounttype and zoneid do not split balances.
//   - ASSUMPTION (Midas codes): sig mismatch is 1001 with msg "sig check
//     failed"; openkey "expired" plays a failed login (1018) and openkey
//     "risk" a risk-control refusal (1145, of the 1145-1149 range);
//     cancel_pay_m of an unknown billno (or another player's, a present, an
//     expired one) is 1003 "billno not found"; cancel_pay_m of an already
//     cancelled bill is 1002215 "duplicate billno" (an earlier call with it
//     succeeded); cancel_pay_m whose amt differs from the bill is 1001.
//     Error replies carry ret and msg (and billno on 1002215); success
//     replies carry no msg. first_save is 1 while save_amt is 0; gen_expire
//     is 0 and tss_list [] (no subscriptions).
//   - Midas signature: OpenAPI V3.0 exactly as providers.md gives it:
//     Base64(HMAC-SHA1(appkey+"&", "GET&"+enc("/v3/r"+path)+"&"+enc(sorted
//     k=v joined by &))) over every query parameter but sig, raw decoded
//     values, enc keeping only A-Z a-z 0-9 - _ . (so "~" is %7E), upper-case
//     hex. Every reply is HTTP 200, Content-Type text/html; charset=utf-8.
//   - ASSUMPTION (SUD auth): a missing or unparsable Authorization header, or
//     an app_id other than the configured one, is 10003; a missing
//     timestamp or nonce, or a signature that is not the lower-case hex
//     HMAC-SHA1 of app_id\ntimestamp\nnonce\nbody\n, is 10004. The timestamp
//     is unix seconds (providers.md) and, once the signature holds, must be
//     within 5 minutes of the sandbox clock either way, else 10004 too (it
//     is part of the signed string; a stale signature is as good as a wrong
//     one). Discovery with a wrong key answers HTTP 404 with ret_code 10003.
//   - ASSUMPTION (SUD Content-Type): create_order and query_order need a
//     Content-Type of application/json, charset utf-8 if one is given (the
//     seed's "application/json;charset=utf-8"); anything else, or none, is
//     10002, checked before the signature.
//   - ASSUMPTION (SUD create_order): 10002 for a body that is not JSON of the
//     documented types, an empty required string, out_order_id or
//     out_group_id over 64 characters, value missing or outside int32, a
//     payload that is not an object, or a refusal of Config.Games; 70501 for
//     a repeated out_order_id (whatever the body). query_order takes
//     out_order_id or order_id (both must then agree) and answers data with
//     the order's fields and status; 70503 when unknown. 10111 (game not
//     found) is never produced: unknown games pass the generic checks.
package sandbox
