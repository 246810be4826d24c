# airlock's bash kernel for E2B code contexts (language "bash"): envd_agent.py starts one per
# context as `bash --noprofile --norc -c "<this file>" bash <cwd>` in a new session, with the
# workspace's envs already in its environment (envd_kernel.spawn). Every run's code is eval'd by
# this one shell, so cd, variables, functions and options persist across runs.
#
# Requests (stdin, moved to fd 4 so the code's stdin is /dev/null) are NUL-terminated fields,
# written by envd_contexts.BashKernel:
#   run NUL <marker> NUL <n> NUL (<name> NUL <value> NUL) x n <code> NUL
#   env NUL <marker> NUL <n> NUL (<name> NUL <value> NUL) x n
# A run's envs hold for that run only; env's for good. The code's output goes straight to fds 1
# and 2 (the agent streams them). After the code, the shell writes to fd 3, as JSON lines
# carrying the request's marker: an "ExitCode" error when the code's status is not 0 (value: the
# status), then "done". During the code, fds 3 and 4 are closed, so neither it nor its children
# can write the agent's channel or read its requests; the marker makes a stray line harmless.
# SIGINT (the agent signals the kernel's process group) ends the code's foreground command and
# the rest of the run; the run then reports KeyboardInterrupt. `exit` ends the kernel (the agent
# reports KernelDied and starts a fresh one for the next run), as set -e does after a failure.

cd -- "$1" 2>/dev/null || printf 'envd_bash_kernel: cwd: %s\n' "$1" >&2
exec 4<&0 0</dev/null
trap : INT  # between runs (a late interrupt); not ignored, which the code's children would inherit

__airlock_read_envs() {  # reads n pairs into __airlock_envs
  local count name value
  IFS= read -r -d '' -u 4 count || exit 0
  __airlock_envs=()
  for ((; count > 0; count--)); do
    IFS= read -r -d '' -u 4 name || exit 0
    IFS= read -r -d '' -u 4 value || exit 0
    __airlock_envs+=("$name" "$value")
  done
}

while :; do
  # Status above 128: a signal interrupted the wait for a request (nothing of it was read).
  IFS= read -r -d '' -u 4 __airlock_kind || { (($? > 128)) && continue; exit 0; }
  IFS= read -r -d '' -u 4 __airlock_marker || exit 0
  __airlock_read_envs
  if [[ $__airlock_kind == env ]]; then
    for ((__airlock_i = 0; __airlock_i < ${#__airlock_envs[@]}; __airlock_i += 2)); do
      export "${__airlock_envs[__airlock_i]}=${__airlock_envs[__airlock_i + 1]}" 2>/dev/null
    done
    printf '{"marker":"%s","type":"done"}\n' "$__airlock_marker" >&3
    continue
  fi
  IFS= read -r -d '' -u 4 __airlock_code || exit 0
  __airlock_saved=()  # name, whether it was set, its value: restored after the run
  for ((__airlock_i = 0; __airlock_i < ${#__airlock_envs[@]}; __airlock_i += 2)); do
    __airlock_name=${__airlock_envs[__airlock_i]}
    if [[ -v $__airlock_name ]]; then
      __airlock_saved+=("$__airlock_name" 1 "${!__airlock_name}")
    else
      __airlock_saved+=("$__airlock_name" 0 "")
    fi
    export "$__airlock_name=${__airlock_envs[__airlock_i + 1]}" 2>/dev/null
  done
  __airlock_interrupted=0
  # The one-pass loop: a `break` or `continue` in the code (or the INT trap's) ends this run,
  # not the kernel's loop.
  trap '__airlock_interrupted=1; break' INT
  for __airlock_once in 1; do
    eval "$__airlock_code"
  done 3>&- 4<&-
  __airlock_status=$?
  trap : INT
  for ((__airlock_i = 0; __airlock_i < ${#__airlock_saved[@]}; __airlock_i += 3)); do
    if [[ ${__airlock_saved[__airlock_i + 1]} == 1 ]]; then
      export "${__airlock_saved[__airlock_i]}=${__airlock_saved[__airlock_i + 2]}" 2>/dev/null
    else
      unset "${__airlock_saved[__airlock_i]}"
    fi
  done
  if [[ $__airlock_interrupted == 1 ]]; then
    printf '{"marker":"%s","type":"error","name":"KeyboardInterrupt","value":"","traceback":"KeyboardInterrupt: the run was interrupted\\n"}\n' \
      "$__airlock_marker" >&3
  elif [[ $__airlock_status != 0 ]]; then
    printf '{"marker":"%s","type":"error","name":"ExitCode","value":"%d","traceback":"exit status %d\\n"}\n' \
      "$__airlock_marker" "$__airlock_status" "$__airlock_status" >&3
  fi
  printf '{"marker":"%s","type":"done"}\n' "$__airlock_marker" >&3
done
exit 0
