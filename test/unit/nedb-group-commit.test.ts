import Datastore from "@seald-io/nedb";
import path from "node:path";
import { nedbDriver } from "../../src/storage/nedb";
import { tempDir } from "../support/broker";

test("group commit: 500 concurrent writes are all in the file once their calls return, in order", async () => {
	const filename = path.join(tempDir(), "gc.db");
	const db = new Datastore({ filename });
	await db.loadDatabaseAsync();
	const driver = nedbDriver(db);
	await Promise.all(Array.from({ length: 500 }, (_, i) => driver.insert({ _id: `d${i}`, n: 0 })));
	for (let round = 1; round <= 3; round++) await Promise.all(Array.from({ length: 500 }, (_, i) => driver.updateOne({ _id: `d${i}` }, { n: round })));
	await driver.removeMany({ _id: "d0" });
	// A second datastore reads only what reached the file.
	const reopened = new Datastore({ filename });
	await reopened.loadDatabaseAsync();
	const docs = await reopened.findAsync({});
	expect(docs).toHaveLength(499);
	expect(docs.every(d => d.n === 3)).toBe(true);
});
