/** Which controls the signed-in person sees: those their roles may use (the server refuses the rest anyway). */
import { can } from "../lib/jwt";
import { session } from "../lib/session";

export const canOperate = () => can(session.value?.roles ?? [], "operate");
export const isAdmin = () => can(session.value?.roles ?? [], "admin");
