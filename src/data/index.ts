/** Data: datasets (files, image patches), the batch stream, and image preprocessing. */
export type { Dataset } from './dataset.js';
export { type Batch, BATCH_DEFAULTS, type BatchOptions, BatchStream, NON_FINITE_POLICIES, type NonFinitePolicy, type RowSample } from './batches.js';
export { DEMO_IMAGE_PACKAGES, demoImagePaths } from './demo-images.js';
export { IMAGE_DEFAULTS, imagePatchDataset, type ImagePatchDataset, type ImagePatchOptions, isImagePatchDataset } from './image-dataset.js';
export { type GreyImage, IMAGE_EXTENSIONS, listImages, readGreyImage } from './images.js';
export { memoryDataset } from './memory.js';
export { npyDataset } from './npy.js';
export { DATA_FORMATS, type DataFormat, type DataSpec, openDataset } from './open.js';
export { loadImagePreprocess, saveImagePreprocess } from './preprocess-file.js';
export { rawDataset } from './raw.js';
export { safetensorsDataset } from './safetensors.js';
export { type ImagePreprocess, preprocessPatches, toPixelSpace, type Whitening, WHITENINGS } from './whitening.js';
