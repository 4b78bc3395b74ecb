export interface BundledHostApp {
  dir: string;
  bundle: string;
  /** Every source file inlined into the bundle. */
  inputs: string[];
  /** What the bundle still imports at run time. */
  externals: string[];
}

export function bundleHostApp(options: {
  /** esbuild's `build`, passed in by the adapter that depends on esbuild. */
  build: (options: never) => Promise<unknown>;
  app: string;
  packageName: string;
  packageDir: string;
  prefix: string;
}): Promise<BundledHostApp>;
