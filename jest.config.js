/** @type {import('jest').Config} */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.test.ts"],
	transform: {
		"^.+\\.ts$": ["ts-jest", { diagnostics: false }],
		// jose ships ES modules only; Node 22 runs them through require(esm), jest's own module loader does not.
		"/node_modules/jose/.+\\.js$": ["ts-jest", { diagnostics: false, tsconfig: { allowJs: true, module: "commonjs", target: "ES2022" } }]
	},
	transformIgnorePatterns: ["/node_modules/(?!jose/)"],
	testTimeout: 30000,
	maxWorkers: 2,
	forceExit: true
};
