# demo_show.awk -- corral's /metrics (Prometheus text) as the admin console's SHOW POOLS
# and SHOW APPS would show them, for scripts/demo.sh: one line per pool (database/user)
# and per application_name (in the demo, per function).  wait_p99_ms is the upper edge of
# the wait histogram's bucket that holds the 99th percentile.
function lab(s, k,   r) {
	r = s
	if (!sub(".*[{,]" k "=\"", "", r))
		return ""
	sub("\".*", "", r)
	return r
}
function pool(s) { return lab(s, "database") "/" lab(s, "user") }
function p99(a,   i) {
	if (cnt[a] == 0)
		return "-"
	for (i = 1; i <= nb[a]; i++)
		if (cum[a, i] >= 0.99 * cnt[a])
			return le[a, i] == "+Inf" ? "+Inf" : sprintf("%.0f", le[a, i] * 1000)
	return "-"
}
/^#/ { next }
{ name = $1; sub("{.*", "", name); v = $NF }
name == "corral_pool_size" { k = pool($1); size[k] = v; pools[++np] = k }
name == "corral_pool_clients" { pc[pool($1), lab($1, "state")] = v }
name == "corral_pool_servers" { ps[pool($1), lab($1, "state")] = v }
name == "corral_pool_maxwait_seconds" { pmw[pool($1)] = v }
name == "corral_pool_transactions_total" { ptx[pool($1)] = v }
name == "corral_app_limit" { a = lab($1, "app"); lim[a] = v; apps[++na] = a }
name == "corral_app_clients" { ac[lab($1, "app"), lab($1, "state")] = v }
name == "corral_app_admitted_total" { adm[lab($1, "app")] = v }
name == "corral_app_sheds_total" { shed[lab($1, "app")] = v }
name == "corral_app_timeouts_total" { tmo[lab($1, "app")] = v }
name == "corral_app_transactions_total" { atx[lab($1, "app")] = v }
name == "corral_app_wait_duration_seconds_bucket" {
	a = lab($1, "app"); nb[a]++; le[a, nb[a]] = lab($1, "le"); cum[a, nb[a]] = v
}
name == "corral_app_wait_duration_seconds_count" { cnt[lab($1, "app")] = v }
END {
	printf "  SHOW POOLS  %-16s %9s %10s %9s %7s %8s %9s %9s %12s\n", "database/user",
		"cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_login", "pool_size",
		"maxwait_s", "transactions"
	for (i = 1; i <= np; i++) {
		k = pools[i]
		printf "              %-16s %9d %10d %9d %7d %8d %9d %9.1f %12d\n", k, pc[k, "active"],
			pc[k, "waiting"] + pc[k, "waiting_app"], ps[k, "active"], ps[k, "idle"],
			ps[k, "login"], size[k], pmw[k], ptx[k]
	}
	printf "  SHOW APPS   %-22s %6s %7s %5s %8s %6s %9s %11s %12s\n", "application_name",
		"active", "waiting", "limit", "admitted", "shed", "timed_out", "wait_p99_ms",
		"transactions"
	for (i = 1; i <= na; i++) {
		a = apps[i]
		printf "              %-22s %6d %7d %5s %8d %6d %9d %11s %12d\n", a, ac[a, "active"],
			ac[a, "waiting"] + ac[a, "waiting_app"], lim[a] ? lim[a] : "-", adm[a], shed[a],
			tmo[a], p99(a), atx[a]
	}
}
