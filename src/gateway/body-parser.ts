/**
 * moleculer-web's JSON body parser, its refusals kept as the 4xx they are. body-parser's errors may
 * carry a library's own `code` (zlib's "Z_DATA_ERROR" for a body that is not the gzip its
 * Content-Encoding says), which moleculer-web takes for the status before `status` itself: such a
 * body was answered 500. The status goes in `code`.
 */
import type { Req, Res } from "./http-request";

type Next = (err?: unknown) => void;
type Connect = (req: Req, res: Res, next: Next) => void;

export function jsonBodyParser(gateway: unknown, limit: number): Connect {
	const parse = (gateway as { bodyParser: { json(options: object): Connect } }).bodyParser.json({ limit, strict: false });
	return (req, res, next) =>
		parse(req, res, err => {
			const status = (err as { status?: unknown } | undefined)?.status;
			next(err && typeof status === "number" && status >= 400 && status < 500 ? Object.assign(err as object, { code: status }) : err);
		});
}
