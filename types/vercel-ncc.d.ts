declare module '@vercel/ncc' {
  interface NccOptions {
    quiet?: boolean;
    minify?: boolean;
    sourceMap?: boolean;
    license?: string;
    externals?: string[];
  }
  export default function ncc(
    entry: string,
    options?: NccOptions,
  ): Promise<{ code: string; assets: Record<string, { source: Buffer | string }> }>;
}
