#!/usr/bin/env bash
# A team and its collaboration bus, end to end, with the CLI only (docs/teams.md, docs/bus.md).
#
#   bash examples/team/demo.sh
#
# It works in a fresh temporary MASQUE_HOME (removed at the end), so it touches nothing of yours:
# spawn the example team (orchestrator = arbiter, engineer, qa), then the bus cycle
#   engineer proposes -> qa critiques and asks for a revision -> you (a person) approve anyway
#   -> Masque surfaces a conflict -> the orchestrator resolves it (revise)
#   -> engineer revises -> qa approves the revision
# then read the whole bus and release the team. MASQUE_CMD overrides the command (default: masque).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a masque_cmd <<<"${MASQUE_CMD:-masque}"
masque() { command "${masque_cmd[@]}" "$@"; }  # `command`: never this function itself

# Only this demo's own identity counts: not a session or actor from the calling shell.
unset MASQUE_TOKEN MASQUE_ACTOR MASQUE_ACTOR_KEY MASQUE_SESSION_ID MASQUE_PARENT_SESSION_ID MASQUE_CREDENTIAL
MASQUE_HOME="$(mktemp -d "${TMPDIR:-/tmp}/masque-team-demo.XXXXXX")"
trap 'rm -rf "$MASQUE_HOME"' EXIT
export MASQUE_HOME MASQUE_PATH="$here"

step() { printf '\n== %s\n' "$*"; }
posted_id() { awk '/^posted /{print $2}'; }  # "posted bus_... (member.kind)" -> bus_...

step "a store, with you as its founder"
masque init --founder demo >/dev/null 2>&1
masque whoami

step "spawn the team: every member qualifies for the intent, or nothing is recorded"
masque team spawn --masque orchestrator --masque engineer --masque qa \
    --intent "implement user authentication" --name auth --arbiter orchestrator --format text

step "engineer proposes"
proposal=$(masque bus post auth --kind proposal --member engineer --text "login endpoint with server-side sessions" | posted_id)
echo "proposal $proposal"

step "qa critiques and asks for a revision"
critique=$(masque bus post auth --kind critique --member qa --reply-to "$proposal" --request-revision \
    --text "no rate limiting on /login" | posted_id)
echo "critique $critique"

step "you approve the proposal as it is: Masque surfaces the disagreement as a conflict"
masque bus post auth --kind approval --reply-to "$proposal" --text "good enough for the first cut" 2>&1
conflict=$(masque bus read auth --kind conflict | awk 'NR==1{print $1}')
test -n "$conflict"

step "the orchestrator (the arbiter) resolves it, once"
masque bus resolve auth "$conflict" --decision revise --prevails "$critique" \
    --notes "rate limiting before shipping" --member orchestrator
if masque bus resolve auth "$conflict" --decision accept 2>/dev/null; then
    echo "a second resolution was accepted" >&2
    exit 1
fi
echo "a second resolution is refused (already_resolved)"

step "engineer revises, qa approves the revision (no new conflict: the first reviews are settled)"
revision=$(masque bus post auth --kind revision --member engineer --reply-to "$proposal" \
    --text "login endpoint with sessions and a 5/min rate limit" | posted_id)
masque bus post auth --kind approval --member qa --reply-to "$revision" --text "rate limit tested" 2>&1

step "the whole bus, in posting order"
masque bus read auth

step "what the orchestrator hears (its subscriptions: *.output, *.conflict)"
masque bus read auth --member orchestrator

step "release the team: every member session ends, one outcome recorded"
masque team release auth --score + --notes "auth reviewed and shipped"
