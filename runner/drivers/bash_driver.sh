# airlock's bash session driver: runs each execution it is sent in this one shell, so the working
# directory, variables, functions and aliases persist. The frame and record formats are those of
# python_driver.py: "MARKER CODE_BYTES STDIN_BYTES\n", code, stdin; afterwards MARKER on stdout and
# stderr, and "MARKER end STATUS EXIT_CODE OUT_MARKED ERR_MARKED REASON_BYTES\n" then the reason
# on fd 3. STATUS is ok or error (a nonzero status of the last command); `exit` ends the shell.

# Private copies of the channels (fds above 10 are for the shell's own use), so code that redirects
# or closes 0, 1, 2 or 3 cannot break them.
exec {__airlock_frames}<&0 {__airlock_control}>&3 {__airlock_out}>&1 {__airlock_err}>&2
exec 3>&- </dev/null

__airlock_read_frame() {
  # Byte counts are bytes, so read them in the C locale whatever LANG the code sets.
  local LC_ALL=C header
  IFS= read -r header <&"$__airlock_frames" || return 1
  read -r __airlock_marker __airlock_code_bytes __airlock_stdin_bytes <<<"$header" || return 1
  __airlock_code=
  if ((__airlock_code_bytes > 0)); then
    IFS= read -r -d '' -N "$__airlock_code_bytes" __airlock_code <&"$__airlock_frames" || return 1
  fi
  __airlock_stdin_file=/tmp/.airlock-stdin
  if ((__airlock_stdin_bytes > 0)); then
    head -c "$__airlock_stdin_bytes" <&"$__airlock_frames" >"$__airlock_stdin_file" || return 1
  else
    : >"$__airlock_stdin_file"
  fi
}

while __airlock_read_frame; do
  # A brace group runs in this shell (not a subshell), so what the code changes persists.
  { eval "$__airlock_code"; } <"$__airlock_stdin_file"
  __airlock_status=$?
  # A session's processes end with the execution that started them: kill(-1) reaches every
  # process of the sandbox but this shell and its init, so nothing burns CPU between executions.
  builtin kill -KILL -1 2>/dev/null
  # And reaped: a killed background job stays a zombie (still in /proc, still a pid) until its
  # parent, this shell, waits for it, which bash otherwise does only when it next looks.
  builtin wait 2>/dev/null
  __airlock_reason=
  __airlock_kind=ok
  if ((__airlock_status != 0)); then
    __airlock_kind=error
    __airlock_reason="the last command exited with status $__airlock_status; the shell and its state are kept"
  fi
  __airlock_om=0 __airlock_em=0
  printf '%s' "$__airlock_marker" >&"$__airlock_out" 2>/dev/null && __airlock_om=1
  printf '%s' "$__airlock_marker" >&"$__airlock_err" 2>/dev/null && __airlock_em=1
  LC_ALL=C printf '%s end %s %d %d %d %d\n%s' "$__airlock_marker" "$__airlock_kind" \
    "$__airlock_status" "$__airlock_om" "$__airlock_em" "${#__airlock_reason}" \
    "$__airlock_reason" >&"$__airlock_control" || exit 0
done
